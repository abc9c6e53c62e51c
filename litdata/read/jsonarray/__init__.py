"""A JSON array of records, read with bounded memory: the reader that yields each element or its reject
(reader.py), the scan that finds where a malformed element ends (scanner.py), the decoded text with byte offsets
under both (text.py), and the offset index that cuts the array into pieces for the Ray engine (index.py).
"""

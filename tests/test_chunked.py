from litdata.chunked import chunked


def test_a_stream_is_cut_into_lists_of_the_size_the_last_one_shorter():
    assert list(chunked(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked(range(6), 3)) == [[0, 1, 2], [3, 4, 5]]
    assert list(chunked([], 3)) == []


def test_items_are_read_only_as_chunks_are_asked_for():
    read = []

    def items():
        for i in range(10):
            read.append(i)
            yield i

    first = next(chunked(items(), 4))
    assert first == [0, 1, 2, 3] and read == [0, 1, 2, 3]

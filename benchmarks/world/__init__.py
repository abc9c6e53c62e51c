"""The synthetic world behind the bundled demo and the benchmark workloads: LLaVA-665K-shaped records about small
drawn pictures. Not part of the installed package: `litdata demo` needs only the data and tokenizer it built."""

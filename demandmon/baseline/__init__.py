"""Expected demand: what the same hour of the week held over the previous four weeks, with
a band and a score saying how unusual the last hour is (docs/semantics.md, "Expected
demand"). ``expected`` is the pure numpy maths, ``read`` sums hour buckets in Redis and
keeps what a scrape may reuse."""

"""Data sets: the attribute vocabulary, the synthetic portrait generator, the data set writer and tool."""

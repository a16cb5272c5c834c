"""Data: raw sources (sources) -> fixed splits (splits) -> the decoded event store (events) -> frames per
batch (frames) -> model inputs (encoding); `datasets` assembles a study's samples, `prepare` gets them
ready before any trial, `synthetic` writes tiny data sets in the real formats."""

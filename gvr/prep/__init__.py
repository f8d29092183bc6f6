"""Corpus preparation (``make prep``): scan and split at scene cuts, measure, filter, write training shards.

Each step reads the previous step's JSON-lines file as a stream and appends its results to a journal, one
line per input, so that memory stays flat in the size of the corpus, an interrupted run resumes where it
stopped, and a rerun of a finished step does no work. See :mod:`gvr.prep.jobs`.
"""

"""Stage 4, decode: generated samples -> clean, de-duplicated titles CSV with measures.

    python keyword_decode.py --config configs/default.yaml     (or python -m pipeline.decode)

Modules, in the order data flows: samples (raw samples streamed from disk), dedupe (on-disk
de-duplication), keyword_filter (titles without the requested keywords to a side file), stage
(`run`: regex decoding of each sample -> decoded.csv + stats).
"""
from pipeline.decode.dedupe import DedupeStore
from pipeline.decode.samples import GPT2_SIMPLE_DELIM, read_delimited, read_records
from pipeline.decode.stage import DecodeConfig, canonical_sections, decode, decode_sample, extract, finished_title, run

__all__ = ["DecodeConfig", "DedupeStore", "GPT2_SIMPLE_DELIM", "canonical_sections", "decode", "decode_sample", "extract", "finished_title", "read_delimited", "read_records", "run"]

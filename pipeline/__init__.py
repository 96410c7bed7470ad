"""Keyword-conditioned Reddit title generation: export, encode, train, generate, decode.

Heavy libraries (spaCy, Ray, TensorFlow, gpt-2-simple) are imported inside the
functions that need them, so loading a config or the format never pulls them in.
"""

"""What every stage shares; any package may import these modules directly.

format (the training text format: markers, documents, clean_text), errors (the errors users
see), io (atomic outputs, small JSON records), paths (every output file of a run), nlp (the spaCy
model by a configurable name), measures (keyword coverage, words, novelty: what a title holds,
one rule for decode, generate, report and serve), actor_pool (the Ray pool of encode and
generate), gpt2 (a model folder in gpt-2-simple's layout: its files, hparams, checkpoint writer),
transformer (GPT-2's graph in our code, on gpt-2-simple's variables: the training step's model),
copy_head (the pointer from a title to its keyword section: token sections, mixture, its graph),
device (TensorFlow loaded quietly, and the devices it uses), imports (the project's import
graph, for make and the layout tests).
"""

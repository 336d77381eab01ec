"""Paper artefacts: collect metrics (``collect``), tables, figures, embeddings, the toy example and
the claims check. Import the submodule you need; ``toy`` imports torch and the training loss."""

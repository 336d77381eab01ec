"""One function per workflow rule: read inputs, call the library, write outputs (with provenance).

The scripts in workflow/scripts/ only unpack ``snakemake`` objects and call these, so every rule's
behaviour is testable without Snakemake.
"""

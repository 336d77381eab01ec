"""data stage of lsmia."""

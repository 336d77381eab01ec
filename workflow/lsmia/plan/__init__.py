"""The experiment plan: the validated config turned once into tables of what is trained, attacked
and measured, and which rows each paper artefact shows.

``names`` is the grammar of run names (imported by ``lsmia.config``, so it imports nothing of
lsmia); ``runs`` builds the plan (``build_plan``); ``artefacts`` is the artefact registry;
``layout`` is where every file of a run lies.
"""

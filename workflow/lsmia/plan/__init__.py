"""The experiment plan: the validated config turned once into tables of what is trained, attacked
and measured, and which rows each paper artefact shows.

``names`` is the grammar of run names (imported by ``lsmia.config``, so it imports nothing of
lsmia); ``runs`` holds the records (runs, attacks, a row's files); ``artefacts`` is the artefact
registry; ``experiment`` builds the plan (``build_plan``); ``layout`` is where the files lie.
Imports go one way: names, layout ← runs ← artefacts ← experiment.
"""

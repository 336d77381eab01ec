#!/usr/bin/env bash
# Run by Snakemake inside envs/lsmia.yaml once it is created (--sdm conda): the packages of
# requirements-extra.txt, whose metadata pins an old torch, installed without their dependencies.
set -euo pipefail
pip install --no-deps facenet-pytorch==2.6.0

# What the paper's artefacts read and write, from the plan (lsmia.plan: its artefact registry gives
# each artefact's rows and output files); the rules are in paper.smk.
from lsmia.plan.artefacts import artefact_kind

ART = config["artefacts"]
PAPER = PLAN.layout.paper


def metrics_inputs(name):
    """Target-model, attack and (where the artefact shows ξ) knowledge metrics of its rows."""
    return _row_inputs(PLAN.artefact(name).rows())


def _row_inputs(rows):
    return {
        "models": list(dict.fromkeys(r.target_metrics for r in rows if r.target_metrics)),
        "attacks": [r.attack_metrics for r in rows],
        "knowledge": [r.knowledge for r in rows if r.knowledge],
    }


def target_runs(name):
    """(dataset, architecture, run name) of every target model an artefact shows."""
    return [(r.dataset, r.architecture, r.name) for r in PLAN.artefact(name).targets]


def paper_artefacts():
    """Every artefact the config asks for, and the claims check."""
    files = [f for artefact in PLAN.artefacts.values() for f in artefact.outputs.values()]
    return files + [f"{PAPER}/claims.{ext}" for ext in ("md", "csv", "html")]


def artefact_outputs(name, category):
    """The rule outputs of an artefact; its HTML table and PNG figure go into the report."""
    outputs = PLAN.layout.paper_files(artefact_kind(name).outputs)
    for key, group in (("figure", "Figures"), ("table", "Tables")):
        if key in outputs:
            outputs[key] = report(
                outputs[key], category=category or group, caption=f"../report/{name}.rst"
            )
    return outputs


def _claims_inputs(wildcards):
    return _row_inputs(PLAN.claim_rows())

# Figures, tables and the claims report, each from its aggregated tables only.
# One rule per output kind (figure, table, report), each running the jupytext
# notebook the registry names for the artifact.


def artifacts_of_kind(kind):
    return [a for a in config["artifacts"] if EXPERIMENT.artifact_output_kind(a) == kind]


for kind, extensions in ARTIFACT_FILES.items():

    rule:
        name:
            f"artifact_{kind}"
        input:
            unpack(artifact_inputs),
        output:
            **{
                ext: report(
                    FIGURES + f"/{{artifact}}.{ext}",
                    caption="../report/artifact.rst",
                    category="{artifact}",
                )
                if ext == extensions[0]
                else FIGURES + f"/{{artifact}}.{ext}"
                for ext in extensions
            },
            caption=FIGURES + "/{artifact}.caption.md",
            provenance=FIGURES + "/{artifact}.provenance.json",
        wildcard_constraints:
            artifact="|".join(artifacts_of_kind(kind)) or "^$",
        params:
            artifact=artifact_param("artifact"),
            caption=artifact_param("caption"),
            variants=artifact_param("variants"),
            tasks=artifact_param("tasks"),
            families=artifact_param("families"),
            inferred=artifact_param("inferred"),
            notebook=artifact_param("notebook"),
            scale=EXPERIMENT.scale_name,
            scale_info=scale_info(),
        log:
            RESULTS + "/logs/artifacts/{artifact}.log",
        localrule: True
        conda:
            "../../environment.yml"
        script:
            "../notebooks/{params.notebook}.py"


for artifact_id in config["artifacts"]:

    rule:
        name:
            artifact_id
        input:
            lambda w, artifact_id=artifact_id: scale_artifact_outputs(artifact_id),
        localrule: True


rule figures:
    """Every artifact of the scale."""
    input:
        [f for a in EXPERIMENT.artifact_ids for f in artifact_outputs(a)],
    default_target: True
    localrule: True


rule tables:
    """The scale's table artifacts (and the claims report)."""
    input:
        [
            f
            for a in EXPERIMENT.artifact_ids
            if EXPERIMENT.artifact_output_kind(a) != "figure"
            for f in artifact_outputs(a)
        ],
    localrule: True

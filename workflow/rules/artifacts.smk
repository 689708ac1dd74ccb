# Figures, tables and the claims report, each from its aggregated tables only.
# One rule per output kind (figure, table, report), each running the jupytext
# notebook the registry names for the artifact.


for kind, extensions in ARTIFACT_FILES.items():

    rule:
        name:
            f"artifact_{kind}"
        input:
            unpack(artifact_inputs),
        output:
            **{
                ext: (
                    report(
                        f"{FIGURES}/{{artifact}}.{ext}",
                        caption="../report/artifact.rst",
                        category="{artifact}",
                    )
                    if ext == extensions[0]
                    else f"{FIGURES}/{{artifact}}.{ext}"
                )
                for ext in extensions
            },
            caption=f"{FIGURES}/{{artifact}}.caption.md",
            provenance=f"{FIGURES}/{{artifact}}.provenance.json",
        log:
            selection_dir(f"{RESULTS}/logs/artifacts", "{artifact}.log"),
        wildcard_constraints:
            artifact="|".join(artifacts_of_kind(kind)) or "^$",
        localrule: True
        conda:
            "../../environment.yml"
        params:
            artifact=artifact_param("artifact"),
            caption=artifact_param("caption"),
            variants=artifact_param("variants"),
            left_out=artifact_param("left_out"),
            tasks=artifact_param("tasks"),
            families=artifact_param("families"),
            sources=artifact_param("sources"),
            inferred=artifact_param("inferred"),
            notebook=artifact_param("notebook"),
            scale=EXPERIMENT.scale_name,
            scale_info=scale_info(),
            min_seeds=config["min_seeds"],
        script:
            "../notebooks/{params.notebook}.py"


for artifact_id in config["artifacts"]:

    rule:
        name:
            artifact_id
        input:
            lambda w, artifact_id=artifact_id: scale_artifact_outputs(artifact_id),
        localrule: True


# Every artifact of the scale.
rule figures:
    default_target: True
    input:
        [f for a in EXPERIMENT.artifact_ids for f in artifact_outputs(a)],
    localrule: True


# The scale's table artifacts (and the claims report).
rule tables:
    input:
        [
            f
            for a in EXPERIMENT.artifact_ids
            if EXPERIMENT.artifact_output_kind(a) != "figure"
            for f in artifact_outputs(a)
        ],
    localrule: True

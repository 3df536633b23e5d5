"""The istd report's ablation tables (:func:`ablation_tables`): L-RPCANet over the number of
stages K and with squeeze-and-excitation blocks switched on module by module, rows whose
checkpoint is an ``l_rpcanet_ablation_*`` file (trained from scratch with the ``ablation``
recipe) or an ``l_rpcanet_<set>_ablation_*_from_<name>`` file (fine-tuned from the authors'
file with ``ablation_finetune``); the latter beside the file they started from, as released."""
from __future__ import annotations

import math
import re

from bench.suites.istd_captions import BRIEF, CAPTIONS
from bench.suites.istd_tables import (ABLATION_METRICS, FA_METRIC, MODULE_NAMES, SHORT, TEX, _fa_units,
                                     _published_name, protocol_text)


def _training(row) -> dict:
    return (row["extras"] or {}).get("training") or {}


def _fine_tuned(row) -> bool:
    return bool(_training(row).get("init"))


def _recipe_text(name: str) -> str:
    from bench.methods.istd.learned import RECIPES
    r = RECIPES[name]
    return (f"`{name}`: {r['steps']} Adam steps, batch {r['batch_size']} of {r['crop']}x{r['crop']} crops "
            f"({int(100 * r['positive_fraction'])}% around a target), lr {r['lr']:g} with poly decay, model kept by "
            f"IoU on the first {r['val_limit']} val images (a split without a val list: every 10th train image, "
            f"held out)")


def _ablation_budget(df) -> str:
    """The recipes the ablation rows of ``df`` were trained with, in words: fine-tuned from
    published weights (``ablation_finetune``) and / or from scratch (``ablation``); rows
    from scratch beside fine-tuned ones are marked "from scratch"."""
    from bench.methods.istd.learned import RECIPES
    groups = {True: [r for _, r in df.iterrows() if _fine_tuned(r)],
              False: [r for _, r in df.iterrows() if not _fine_tuned(r)]}
    sentences, seeds = [], set()
    for tuned, rows in groups.items():
        if not rows:
            continue
        bases = {re.split(r"[+ ]", str(_training(r).get("recipe") or "ablation"), maxsplit=1)[0] for r in rows}
        if len(bases) != 1 or next(iter(bases)) not in RECIPES:
            return "Rows trained with different recipes (" + ", ".join(sorted(bases)) + "): not one budget"
        name = next(iter(bases))
        seeds.add(RECIPES[name]["seed"])
        if tuned:
            inits = sorted({str(_training(r)["init"]) for r in rows})
            sentences.append(
                f"Every row fine-tuned from the authors' file {', '.join(inits)}"
                + (" (the rows not marked from scratch)" if groups[False] else "")
                + ": a network of K stages starts from the file's first K, one with fewer SE blocks from the "
                  "file's other tensors, and the K = 6 row with all four from the whole file (the control: what "
                  f"the recipe alone does), with the same reduced recipe {_recipe_text(name)}, the starting "
                  "state included")
        else:
            stages = sorted({int((r["extras"] or {}).get("stages", 0) or 0) for r in rows})
            sentences.append(
                ("Rows marked from scratch (K = " + ", ".join(map(str, stages)) + "): trained from a random "
                 f"initialisation with the reduced recipe {_recipe_text(name)}; they compare with each other, "
                 "not with the fine-tuned rows" if groups[True] else
                 f"Every row trained from scratch, with the same reduced recipe {_recipe_text(name)}"))
    return (". ".join(sentences) + f"; seed {', '.join(map(str, sorted(seeds)))}; far below the papers' "
            "budget, so differences of a few points are within training noise (one seed per row)")


def _ablation_rows(df) -> tuple[dict, dict]:
    """Row label -> values over the stages K, and SE modules -> values (K = 6), of one
    dataset's ablation rows. Where fine-tuned rows are present, the SE table is theirs and
    the K table's rows from scratch are labelled "K, from scratch" after them."""
    mixed = len({_fine_tuned(r) for _, r in df.iterrows()}) == 2
    k_rows, se_rows = {}, {}
    for _, row in df.iterrows():
        e = row["extras"] or {}
        vals = _ablation_values(row)
        ck, stages = str(e.get("checkpoint", "")), int(e.get("stages", 0) or 0)
        scratch = mixed and not _fine_tuned(row)
        if "_ablation_stages" in ck:
            k_rows[(scratch, stages)] = vals
        if ("_ablation_stages" in ck or "_ablation_se-" in ck) and stages == 6 and not scratch:
            se_rows[tuple(e.get("se_modules") or ())] = vals
    return ({(f"{k}, from scratch" if scratch else str(k)): v for (scratch, k), v in sorted(k_rows.items())},
            se_rows)


def _ablation_values(row) -> dict:
    from bench.report import metric_cells
    pc = row["parameter_count"]
    return {"params": float(pc) if pc == pc else math.nan, **dict(metric_cells(row, ABLATION_METRICS)),
            "train s": float(_training(row).get("seconds") or math.nan),
            # the step of the state kept by validation (0: the start, untouched by the training)
            "kept step": float(math.nan if _training(row).get("kept_step") is None else _training(row)["kept_step"])}


def _ablation_reference(df, reference):
    """The published file that ``df``'s fine-tuned rows started from, as released, on the
    same set and protocol (clean; None where the store lacks that row or no row was
    fine-tuned)."""
    inits = {str(_training(r)["init"]) for _, r in df.iterrows() if _fine_tuned(r)}
    if reference is None or len(inits) != 1 or not next(iter(inits)).startswith("published:"):
        return None
    name = next(iter(inits))[len("published:"):]
    ds = df["dataset"].iloc[0]
    hits = [r for _, r in reference.iterrows()
            if r["dataset"] == ds and r["degradation"] == "clean" and r["method"] == df["method"].iloc[0]
            and _published_name(r) == name]
    return hits[0] if hits else None


def ablation_tables(frame, outdir: str, reference=None) -> list[str]:
    """The slides' ablations of L-RPCANet: stages K, and SE blocks switched on module by
    module; every row trained with the same reduced recipe (in the caption). Rows fine-tuned
    from published weights get the file they started from, as released, as a first row
    (``reference``: the store's other rows, where it is looked up)."""
    import pandas as pd

    from bench.report import header_text, caption, metric_table, prefer_cpu, slug, write_table

    paths: list[str] = []
    frame = prefer_cpu(frame[frame["degradation"] == "clean"], ["dataset", "method_label"])
    if reference is not None:
        reference = prefer_cpu(reference[reference["degradation"] == "clean"], ["dataset", "method_label"])
    fmt = {"params": "{:,.0f}", "train s": "{:.0f}", "kept step": "{:.0f}", **{m: "{}" for m in MODULE_NAMES}}
    for ds in dict.fromkeys(frame["dataset"]):
        df = frame[frame["dataset"] == ds]
        k_rows, se_rows = _ablation_rows(df)
        ref = _ablation_reference(df, reference)
        ref_label = "the authors' file as released" if ref is not None else None
        fields = dict(ds=ds, n=int(df["n_samples"].iloc[0]), protocol=protocol_text(df), budget=_ablation_budget(df))
        short = dict(ds=header_text(ds), n=fields["n"])
        rows_used = df if ref is None else pd.concat([df, ref.to_frame().T])
        if k_rows:
            kv = pd.DataFrame(list(k_rows.values()), index=list(k_rows))
            if ref is not None:
                kv = pd.concat([pd.DataFrame([_ablation_values(ref)], index=[f"6, {ref_label}"]), kv])
            paths += write_table(metric_table(_fa_units(kv), "istd", BRIEF["stages"].format(**short),
                                              "tab:istd_ablation_stages_" + slug(ds), fmt=fmt, index_name="K", metrics=FA_METRIC,
                                              notes=caption(CAPTIONS["stages"], rows_used, **fields), tex=TEX),
                                 outdir, "istd_ablation_stages_" + slug(ds))
        if se_rows:
            order = sorted(se_rows, key=len)
            mods_of = lambda mods: {m: "yes" if m in mods else "-" for m in MODULE_NAMES}  # noqa: E731
            sv = pd.DataFrame([{**mods_of(mods), **se_rows[mods]} for mods in order],
                              index=["+".join(SHORT[m] for m in mods) or "none" for mods in order])
            if ref is not None:
                sv = pd.concat([pd.DataFrame([{**mods_of(MODULE_NAMES), **_ablation_values(ref)}],
                                             index=[f"all, {ref_label}"]), sv])
            paths += write_table(metric_table(_fa_units(sv), "istd", BRIEF["se"].format(**short),
                                              "tab:istd_ablation_se_" + slug(ds), fmt=fmt, index_name="SE in", metrics=FA_METRIC,
                                              notes=caption(CAPTIONS["se"], rows_used, **fields), tex=TEX),
                                 outdir, "istd_ablation_se_" + slug(ds))
    return paths

"""Writing an `EvalReport`: JSON (everything, per-sample values included) and a markdown table."""

from __future__ import annotations

from pathlib import Path

from mvvton.evaluation.paper_eval import EvalReport

# column order of the markdown table: (key, header, format)
COLUMNS = (
    ("ssim", "SSIM ↑", "{:.4f}"),
    ("lpips_alex", "LPIPS-alex ↓", "{:.4f}"),
    ("lpips_vgg", "LPIPS-vgg ↓", "{:.4f}"),
    ("psnr", "PSNR ↑", "{:.2f}"),
    ("fid", "FID ↓", "{:.3f}"),
    ("kid", "KID×1000 ↓", "{:.3f}"),
    ("ssim_garment", "SSIM garment ↑", "{:.4f}"),
    ("lpips_alex_garment", "LPIPS-alex garment ↓", "{:.4f}"),
    ("lpips_vgg_garment", "LPIPS-vgg garment ↓", "{:.4f}"),
    ("psnr_garment", "PSNR garment ↑", "{:.2f}"),
)


def format_markdown(report: EvalReport) -> str:
    """One row per group (all, front, side, back); only columns some group has a value for; notes underneath."""
    columns = [
        column for column in COLUMNS if any(group.get(column[0]) is not None for group in report.groups.values())
    ]
    lines = [
        "| view | n | " + " | ".join(header for _, header, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, group in report.groups.items():
        cells = []
        for key, _, fmt in columns:
            value = group.get(key)
            if value is None:
                cells.append("—")
            elif key == "kid" and group.get("kid_std") is not None:
                cells.append(f"{fmt.format(value)} ± {fmt.format(group['kid_std'])}")
            else:
                cells.append(fmt.format(value))
        lines.append(f"| {name} | {group['n']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{'Paired' if report.paired else 'Unpaired'} evaluation. Networks: " + (
        "; ".join(f"{name}: {origin}" for name, origin in report.networks.items()) or "none (SSIM / PSNR only)"
    ))  # fmt: skip
    lines += [f"- {note}" for note in dict.fromkeys(report.notes)]
    return "\n".join(lines) + "\n"


def write_report(report: EvalReport, output: str | Path) -> tuple[Path, Path]:
    """Write `<output>.json` and `<output>.md` atomically (`output` given without or with either suffix)."""
    from mvvton.batch_inference.runner import write_json_atomic

    base = Path(output)
    if base.suffix in (".json", ".md"):
        base = base.with_suffix("")
    json_path, markdown_path = base.with_suffix(".json"), base.with_suffix(".md")
    write_json_atomic(json_path, report.to_dict())
    temporary = markdown_path.with_name(f".{markdown_path.name}.writing.tmp")
    temporary.write_text(format_markdown(report))
    temporary.replace(markdown_path)
    return json_path, markdown_path

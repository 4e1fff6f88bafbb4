"""The examination-curve figure of the position-bias asset's metadata (a PNG, no Dagster)."""

from __future__ import annotations

import io

import pyarrow as pa

from transforms.cutoffs import Split


def examination_curve_png(
    position_bias: pa.Table, truth: dict[str, list[float]], randomized: pa.Table, policy: str
) -> bytes | None:
    """Estimated (full-data fit) vs true and randomized examination curves, one panel per surface.

    Args:
        position_bias: The ``labels/position_bias`` table; the test-scope (full-data) fit is drawn.
        truth: True curve per surface (empty when unknown).
        randomized: Click rates per (surface, position) under ``policy``
            (:func:`transforms.labels.click_rates_under_policy`); drawn relative to position 0.
        policy: The randomized policy's name, for the legend.

    Returns:
        The PNG's bytes, or None when the table holds no full-data fit.
    """
    # Imported here: nothing starts at import time, and only this figure needs matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    estimated: dict[str, list[tuple[int, float]]] = {}
    for r in position_bias.to_pylist():
        if r["split"] == Split.TEST:
            estimated.setdefault(str(r["surface"]), []).append((int(r["position"]), float(r["examination"])))
    if not estimated:
        return None
    random_by_surface: dict[str, dict[int, float]] = {}
    for r in randomized.to_pylist():
        random_by_surface.setdefault(str(r["surface"]), {})[int(r["position"])] = float(r["click_rate"])
    fig, axes = plt.subplots(1, len(estimated), figsize=(4.5 * len(estimated), 3.5), squeeze=False)
    for ax, (surface, points) in zip(axes[0], sorted(estimated.items()), strict=True):
        points.sort()
        ax.plot([p for p, _ in points], [v for _, v in points], "o-", label="estimated (EM)")
        if surface in truth:
            ax.plot(range(len(truth[surface])), truth[surface], "k--", label="true")
        rates = random_by_surface.get(surface, {})
        if rates.get(0):
            ax.plot(sorted(rates), [rates[k] / rates[0] for k in sorted(rates)], "s:", alpha=0.7,
                    label=f"click rate / position 0 ({policy})")
        ax.set_title(surface)
        ax.set_xlabel("position")
        ax.set_ylabel("P(examined | position)")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()

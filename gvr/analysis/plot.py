"""A small line plot written with Pillow (matplotlib is not a dependency of gvr)."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 140, 140), (255, 127, 14),
           (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207))  # matplotlib's tab10, blue-red-green first


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = (hi - lo) / (count - 1)
    return [lo + i * step for i in range(count)]


def line_plot(
    path: str | Path,
    x: list[float],
    series: dict[str, list[float]],
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 440),
    y_range: tuple[float, float] | None = None,
) -> Path:
    """Draw each series of ``series`` (label -> y values over ``x``) as a polyline and save a PNG. The y axis spans
    ``y_range``, else 0 (or the lowest value, if negative) to 5 % above the highest."""
    if not series or any(len(y) != len(x) for y in series.values()) or len(x) < 2:
        raise ValueError("line_plot: need at least one series with one y for each of >= 2 x values")
    width, height = size
    left, right, top, bottom = 70, 20, 36, 50
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    x_lo, x_hi = min(x), max(x)
    if y_range is not None:
        y_lo, y_hi = y_range
    else:
        y_hi = max(max(y) for y in series.values()) * 1.05 or 1.0
        y_lo = min(0.0, min(min(y) for y in series.values()))

    def to_px(xv: float, yv: float) -> tuple[float, float]:
        px = left + (xv - x_lo) / (x_hi - x_lo) * (width - left - right)
        py = height - bottom - (yv - y_lo) / (y_hi - y_lo) * (height - top - bottom)
        return px, py

    # 1. axes, grid and tick labels
    for xv in _ticks(x_lo, x_hi):
        px, _ = to_px(xv, y_lo)
        draw.line([(px, top), (px, height - bottom)], fill=(232, 232, 232))
        draw.text((px - 10, height - bottom + 6), f"{xv:.2f}", fill="black", font=font)
    for yv in _ticks(y_lo, y_hi):
        _, py = to_px(x_lo, yv)
        draw.line([(left, py), (width - right, py)], fill=(232, 232, 232))
        draw.text((4, py - 6), f"{yv:.3g}", fill="black", font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((left, 10), title, fill="black", font=font)
    draw.text(((width - len(xlabel) * 6) / 2, height - 20), xlabel, fill="black", font=font)
    draw.text((4, top - 16), ylabel, fill="black", font=font)
    # 2. the curves and their legend
    for k, (label, ys) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        points = [to_px(xv, yv) for xv, yv in zip(x, ys, strict=True)]
        draw.line(points, fill=colour, width=2)
        for px, py in points:  # a dot on each measured value
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        lx, ly = width - right - 190, top + 8 + 14 * k
        draw.line([(lx, ly + 6), (lx + 20, ly + 6)], fill=colour, width=2)
        draw.text((lx + 26, ly), label, fill="black", font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out


def bar_plot(
    path: str | Path,
    bars: dict[str, tuple[float, float, float]],
    title: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 440),
) -> Path:
    """One bar per label of ``bars`` (label -> (mean, low, high)) with an error bar from low to high; a PNG."""
    if not bars:
        raise ValueError("bar_plot: need at least one bar")
    width, height = size
    left, right, top, bottom = 70, 20, 36, 60
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    values = [v for bar in bars.values() for v in bar]
    y_lo, y_hi = min(values), max(values)
    pad = (y_hi - y_lo) * 0.15 or abs(y_hi) * 0.05 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad  # bars start at the axis floor: differences, not totals, are visible

    def to_py(yv: float) -> float:
        return height - bottom - (yv - y_lo) / (y_hi - y_lo) * (height - top - bottom)

    for yv in _ticks(y_lo, y_hi):
        draw.line([(left, to_py(yv)), (width - right, to_py(yv))], fill=(232, 232, 232))
        draw.text((4, to_py(yv) - 6), f"{yv:.4g}", fill="black", font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((left, 10), title, fill="black", font=font)
    draw.text((4, top - 16), ylabel, fill="black", font=font)
    slot = (width - left - right) / len(bars)
    for k, (label, (mean, low, high)) in enumerate(bars.items()):
        x0, x1 = left + slot * (k + 0.2), left + slot * (k + 0.8)
        draw.rectangle([x0, to_py(mean), x1, height - bottom], fill=COLOURS[k % len(COLOURS)])
        xc = (x0 + x1) / 2
        draw.line([(xc, to_py(low)), (xc, to_py(high))], fill="black", width=2)
        for yv in (low, high):
            draw.line([(xc - 6, to_py(yv)), (xc + 6, to_py(yv))], fill="black", width=2)
        draw.text((x0, height - bottom + 6), label[:24], fill="black", font=font)
        draw.text((x0, height - bottom + 20), f"{mean:.4g}", fill="black", font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out

"""Draw the demo's camera frames: the bundled road scene as a car driving towards a box and a ball.

Each frame differs from the one before (the box grows, the ball rolls across, the dashes move), so a server
cannot answer a frame from its prompt cache: the image is encoded every time, as on the robot. Deterministic:
running it again writes the same bytes. `python scripts/make_demo_frames.py` rewrites src/swapbench/demo/frames.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src" / "swapbench" / "demo" / "frames"
FRAMES = 4
W, H, HORIZON = 640, 480, 200


def frame(i: int) -> Image.Image:
    im = Image.new("RGB", (W, H), (150, 190, 232))
    d = ImageDraw.Draw(im)
    d.rectangle((0, HORIZON, W, H), fill=(106, 140, 88))
    d.polygon([(260, HORIZON), (380, HORIZON), (620, H), (20, H)], fill=(98, 96, 102))
    for k in range(7):  # lane dashes drift towards the camera
        y = HORIZON + 20 + ((k * 40 + i * 13) % 260)
        d.rectangle((315, y, 325, y + 18), fill=(235, 235, 225))
    d.ellipse((0, 60, 120, 150), fill=(58, 128, 64))
    d.rectangle((30, 140, 90, 230), fill=(120, 84, 56))
    grow = 14 * i  # the box comes closer
    d.rectangle((400 - grow, 250 - grow // 2, 500 + grow, 330 + grow), fill=(200, 64, 40))
    d.rectangle((400 - grow, 250 - grow // 2, 500 + grow, 262 - grow // 2), fill=(150, 36, 30))
    x = 120 + 45 * i  # the ball rolls towards the road's middle
    d.ellipse((x, 260, x + 70, 330), fill=(240, 196, 40))
    return im


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i in range(FRAMES):
        frame(i).save(OUT / f"frame-{i + 1}.jpg", quality=85, optimize=True)
    print(f"{FRAMES} frames in {OUT}")


if __name__ == "__main__":
    main()

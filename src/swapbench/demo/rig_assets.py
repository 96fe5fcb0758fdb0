"""Run by setup_rig.sh, not imported: the rig's small assets, a synthetic SigLIP-style mmproj per model and a
Gemma 3 chat template.

The mmproj is a one-block, 64-wide vision tower with `projector_type = gemma3` whose projection width equals
the language model's n_embd. Its weights are random (seeded), so it tests the image plumbing, not quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# Model file -> n_embd of its language model (the projector must output this width).
MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": 576,
    "gemma-3-270m-q4_k_m.gguf": 640,
}
WIDTH, FFN, HEADS, IMAGE_SIZE, PATCH = 64, 128, 4, 224, 14

GEMMA3_TEMPLATE = """\
{{- bos_token -}}
{%- if messages[0]['role'] == 'system' -%}
  {%- if messages[0]['content'] is string -%}
    {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
  {%- else -%}
    {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
  {%- endif -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set first_user_prefix = '' -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{- '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') -}}
  {%- if message['content'] is string -%}
    {{- message['content'] | trim -}}
  {%- else -%}
    {%- for part in message['content'] -%}
      {%- if part['type'] == 'image' or part['type'] == 'image_url' -%}
        {{- '<start_of_image>' -}}
      {%- elif part['type'] == 'text' -%}
        {{- part['text'] | trim -}}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{- '<end_of_turn>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<start_of_turn>model\\n' -}}
{%- endif -%}
"""


def write_mmproj(path: Path, n_embd_text: int, seed: int) -> None:
    import gguf  # noqa: PLC0415  only here: with the mmproj files written, the template needs no gguf

    """Write a deterministic gemma3-type vision projector for a model of width `n_embd_text`."""
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    w = gguf.GGUFWriter(str(path), "clip")
    w.add_name(f"swapbench synthetic mmproj ({n_embd_text})")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", "gemma3")
    w.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    w.add_uint32("clip.vision.patch_size", PATCH)
    w.add_uint32("clip.vision.embedding_length", WIDTH)
    w.add_uint32("clip.vision.feed_forward_length", FFN)
    w.add_uint32("clip.vision.block_count", 1)
    w.add_uint32("clip.vision.projection_dim", n_embd_text)
    w.add_uint32("clip.vision.attention.head_count", HEADS)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_bool("clip.use_gelu", True)
    n_patches = (IMAGE_SIZE // PATCH) ** 2
    # numpy shapes are ggml's ne reversed.
    w.add_tensor("v.patch_embd.weight", rand(WIDTH, 3, PATCH, PATCH))
    w.add_tensor("v.patch_embd.bias", zeros(WIDTH))
    w.add_tensor("v.position_embd.weight", rand(n_patches, WIDTH))
    for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
        w.add_tensor(f"v.blk.0.{name}.weight", rand(WIDTH, WIDTH))
        w.add_tensor(f"v.blk.0.{name}.bias", zeros(WIDTH))
    for name in ("ln1", "ln2"):
        w.add_tensor(f"v.blk.0.{name}.weight", ones(WIDTH))
        w.add_tensor(f"v.blk.0.{name}.bias", zeros(WIDTH))
    w.add_tensor("v.blk.0.ffn_up.weight", rand(FFN, WIDTH))
    w.add_tensor("v.blk.0.ffn_up.bias", zeros(FFN))
    w.add_tensor("v.blk.0.ffn_down.weight", rand(WIDTH, FFN))
    w.add_tensor("v.blk.0.ffn_down.bias", zeros(WIDTH))
    w.add_tensor("v.post_ln.weight", ones(WIDTH))
    w.add_tensor("v.post_ln.bias", zeros(WIDTH))
    w.add_tensor("mm.soft_emb_norm.weight", ones(WIDTH))
    w.add_tensor("mm.input_projection.weight", rand(WIDTH, n_embd_text))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(models_dir: Path) -> int:
    for i, (model, n_embd) in enumerate(sorted(MODELS.items())):
        out = models_dir / model.replace(".gguf", ".mmproj.gguf")
        if not out.exists():
            tmp = out.with_suffix(".tmp")
            write_mmproj(tmp, n_embd, seed=1000 + i)
            tmp.rename(out)
            print(f"[setup-rig] wrote {out}", file=sys.stderr)
    template = models_dir / "gemma3.jinja"
    template.write_text(GEMMA3_TEMPLATE, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))

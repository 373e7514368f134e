"""Writes stylegan_anime.ipynb (run: python notebooks/make_notebook.py). Edit the cells here, not the .ipynb.

Every code cell calls the stylegan_anime API (or its CLI for long jobs). tests/test_notebook.py checks that the
.ipynb is what this script writes, that each cell compiles and every ``sa.<name>`` it uses exists, and runs the
notebook top to bottom on the CPU (STYLEGAN_ANIME_NOTEBOOK_QUICK=1)."""
import tomllib
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """The repository is named in one place, pyproject.toml's [project.urls]; the install cell gets it from there."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def cells(repo: str) -> list[tuple[str, str]]:
    return [
        ("md", """# stylegan-anime on Colab
Generate anime portraits with StyleGAN2, explore the latent space, steer attributes, project your own
picture and fine-tune. Runtime → Change runtime type → GPU makes everything faster (the CPU works too)."""),
        ("code", f"""# Install. On Colab: from the repository (Colab's torch already satisfies the requirement, so pip keeps it).
# Elsewhere an installed stylegan_anime is used as it is; STYLEGAN_ANIME_NOTEBOOK_INSTALL=PATH installs that
# checkout instead, =skip never installs (the tests run this notebook on the checkout under test).
import importlib.util, os, sys

REPO = "{repo}"  # or your fork
INSTALL = os.environ.get("STYLEGAN_ANIME_NOTEBOOK_INSTALL", "")
if INSTALL and INSTALL != "skip":
    %pip install -q "{{INSTALL}}[notebook]"
elif not INSTALL and ("google.colab" in sys.modules or importlib.util.find_spec("stylegan_anime") is None):
    %pip install -q "stylegan-anime[notebook] @ git+{{REPO}}"

# QUICK=1 shrinks every long job (frames, steps, samples, kimg) so that the whole notebook runs in a few CPU
# minutes; the tests set it. Leave it off for real results.
QUICK = os.environ.get("STYLEGAN_ANIME_NOTEBOOK_QUICK") == "1\""""),
        ("code", """import stylegan_anime as sa
from pathlib import Path
from IPython.display import Image as ShowFile, display
from ipywidgets import FloatSlider, IntSlider, Text, interact

G = sa.load("default", device=sa.resolve_device("auto"))
print(G.img_resolution, "px,", G.num_ws, "ws, c_dim =", G.c_dim)"""),
        ("md", "## Seeds → grid\nThe same seed gives the same face as the official NVlabs tools."),
        ("code", """images = sa.generate_images(G, "0-8", psi=0.7, progress=True)
sa.make_grid(images, cols=3)"""),
        ("md", "## Truncation\n`psi` pulls w towards the average face: lower is cleaner, higher is more varied."),
        ("code", """@interact(seed=IntSlider(0, 0, 1000), psi=FloatSlider(value=0.7, min=0.0, max=1.2, step=0.05))
def show_truncation(seed, psi):
    display(sa.make_grid(sa.generate_images(G, [seed], psi=psi)))"""),
        ("code", """sa.truncation_grid(G, "0-3", psis="0,0.25,0.5,0.75,1")"""),
        ("md", "## Interpolation GIF"),
        ("code", """FRAMES = 12 if QUICK else 60
path = sa.interpolation_video(G, "0,5,9,0", "walk.gif", frames=FRAMES, space="w", psi=0.7, size=256)
display(ShowFile(filename=str(path)))"""),
        ("md", """## Style mixing
Columns give the coarse styles (pose, face shape), rows the rest (colours): each cell is its row's character
with the coarse styles of its column's character."""),
        ("code", """sa.mixing_grid(G, rows="1,2,3", cols="10,11,12,13", layers="coarse", psi=0.7)"""),
        ("md", """## Steering attributes
A conditional network (the bundled default is one) takes a prompt directly (`sa.prompt_labels`: free text
matched against its attribute vocabulary; the same seed keeps the same face). An unconditional one is steered along
attribute directions in w space, fitted from images labelled by an attribute classifier
(trained here on the synthetic labelled portraits; use your own labelled data for real results)."""),
        ("code", """def show_prompt(prompt, seed):
    p = sa.prompt_labels(prompt, sa.network_label_names(G), [seed])
    print("understood:", ", ".join(p.tags), "| not understood:", ", ".join(p.unknown) or "-")
    display(sa.make_grid(sa.generate_images(G, [seed], psi=0.7, c=p.labels)))

if G.c_dim:
    interact(show_prompt, prompt=Text("a girl with long blonde hair in twintails, blue eyes, glasses, smiling"),
             seed=IntSlider(0, 0, 1000))
else:
    print("This network is unconditional (c_dim = 0): the cells below steer it along attribute directions.")"""),
        ("code", """# Unconditional networks: train a small attribute classifier, then fit one direction per label.
PORTRAITS, SAMPLES = (200, 200) if QUICK else (3000, 1000)
CLASSIFIER = "--steps 20 --batch 16 --resolution 32" if QUICK else "--steps 1000"
!stylegan-anime dataset --synthetic {PORTRAITS} synth64.zip --resolution 64 --force
!stylegan-anime classifier --data synth64.zip -o classifier.safetensors {CLASSIFIER} --force
directions = sa.find_directions(G, sa.load_classifier("classifier.safetensors", G.device), samples=SAMPLES,
                                progress=True)
sa.save_directions(directions, "directions.npz")
print(directions.names)"""),
        ("code", """@interact(seed=IntSlider(0, 0, 1000), tags=Text("blonde hair"), keep=Text("glasses"),
          strength=FloatSlider(value=0.0, min=-3.0, max=3.0, step=0.25))
def show_edit(seed, tags, keep, strength):
    chosen = sa.tag_strengths(tags, directions, strength)
    kept = list(sa.tag_strengths(keep, directions))
    display(sa.make_grid(sa.edit_grid(G, [seed], directions, chosen, steps=2, psi=0.7, keep=kept)[1:]))"""),
        ("code", """# Rows: seeds; columns: from -2 to +2 standard deviations along "blonde hair", keeping glasses fixed.
sa.make_grid(sa.edit_grid(G, [0, 1, 2], directions, sa.tag_strengths("blonde hair", directions, 2.0),
                          steps=5, psi=0.7, keep=["glasses"]), cols=5)"""),
        ("md", """## Project your own picture
Upload a portrait (square-ish, face centred); projection finds its w. Outside Colab a synthetic portrait
(the kind of picture the default model learnt from) stands in for the upload."""),
        ("code", """if "google.colab" in sys.modules:
    from google.colab import files
    picture = next(iter(files.upload()))
else:  # a synthetic portrait whose purple bob the default model can draw
    picture = "portrait.png"
    sa.draw_portrait(sa.sample_params(192), 256).save(picture)
PROJECTION_STEPS = 10 if QUICK else 300
target = sa.load_target(picture, G.img_resolution)
result = sa.project(G, target, sa.ProjectionConfig(steps=PROJECTION_STEPS), progress=True, video="projection.gif")
print(f"PSNR {result.psnr:.1f} dB")
display(ShowFile(filename="projection.gif"))"""),
        ("md", """## Fine-tune on your own pictures
Put your images in a folder `my_pictures/` (or upload a zip and unpack it there), make a data set at the
model's resolution and train from the default model. Without pictures of your own, synthetic portraits
fill the folder so that the cell still shows the steps. Snapshots and sample grids land in `runs/mine`;
`--resume-run runs/mine` continues after a disconnect."""),
        ("code", """if not any(Path("my_pictures").glob("*")):
    Path("my_pictures").mkdir(exist_ok=True)
    for i in range(32):
        sa.draw_portrait(sa.sample_params(100_000 + i), 128).save(f"my_pictures/portrait{i:02d}.png")
KIMG, SNAP, BATCH = (0.004, 0.004, 4) if QUICK else (20, 4, 8)  # QUICK: one step of 4 images
# The default model ships its discriminator too; pictures without labels get labels drawn from its frequencies.
!stylegan-anime dataset my_pictures/ my_pictures.zip --resolution {G.img_resolution} --force
!stylegan-anime train --data my_pictures.zip --out runs/mine --resume default --kimg {KIMG} --snap {SNAP} --batch {BATCH}
display(ShowFile(filename=str(sorted(Path("runs/mine").glob("samples-*.png"))[-1])))"""),
    ]


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                             for kind, src in cells(repository_url())])
    # Fixed ids (nbformat draws random ones) so that the same cells always give the same file.
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell{i:02d}"
    nb.metadata.update({"colab": {"provenance": []}, "accelerator": "GPU",
                        "kernelspec": {"name": "python3", "display_name": "Python 3"},
                        "language_info": {"name": "python"}})
    return nb


def text() -> str:
    """The .ipynb file's contents."""
    return nbformat.writes(build()) + "\n"


if __name__ == "__main__":
    out = Path(__file__).with_name("stylegan_anime.ipynb")
    out.write_text(text())
    print(f"wrote {out}")

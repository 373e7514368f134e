"""Writes stylegan_anime.ipynb (run: python notebooks/make_notebook.py). Edit the cells here, not the .ipynb.

Every code cell calls the stylegan_anime API (or its CLI for long jobs); tests/test_notebook.py checks
that each cell compiles and that every ``sa.<name>`` it uses exists."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# stylegan-anime on Colab
Generate anime portraits with StyleGAN2, explore the latent space, steer attributes, project your own
picture and fine-tune. Runtime → Change runtime type → GPU makes everything faster (the CPU works too)."""),
    ("code", """# Install from the repository. Colab's torch already satisfies the requirement, so pip keeps it.
REPO = "https://github.com/stylegan-anime/stylegan-anime"  # or your fork
!pip install -q "stylegan-anime[notebook] @ git+{REPO}\""""),
    ("code", """import stylegan_anime as sa
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
    ("code", """path = sa.interpolation_video(G, "0,5,9,0", "walk.gif", frames=60, space="w", psi=0.7, size=256)
display(ShowFile(filename=str(path)))"""),
    ("md", "## Style mixing\nRows give the coarse styles (pose, face shape), columns the rest (colours)."),
    ("code", """sa.mixing_grid(G, rows="1,2,3", cols="10,11,12,13", layers="coarse", psi=0.7)"""),
    ("md", """## Steering attributes
A conditional network takes tags directly (`sa.tag_labels`). An unconditional one is steered along
attribute directions in w space, fitted from images labelled by an attribute classifier
(trained here on the synthetic labelled portraits; use your own labelled data for real results)."""),
    ("code", """if G.c_dim:
    @interact(tags=Text("blonde hair, blue eyes, twintails"), seed=IntSlider(0, 0, 1000))
    def show_tags(tags, seed):
        c = sa.tag_labels(tags, sa.network_label_names(G), [seed])
        display(sa.make_grid(sa.generate_images(G, [seed], psi=0.7, c=c)))"""),
    ("code", """# Unconditional networks: train a small attribute classifier, then fit one direction per label.
!stylegan-anime dataset --synthetic 3000 synth64.zip --resolution 64 --force
!stylegan-anime classifier --data synth64.zip -o classifier.safetensors --steps 1000 --force
directions = sa.find_directions(G, sa.load_classifier("classifier.safetensors", G.device), samples=1000,
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
    ("md", "## Project your own picture\nUpload a portrait (square-ish, face centred); projection finds its w."),
    ("code", """from google.colab import files
uploaded = next(iter(files.upload()))
target = sa.load_target(uploaded, G.img_resolution)
result = sa.project(G, target, sa.ProjectionConfig(steps=300), progress=True, video="projection.gif")
print(f"PSNR {result.psnr:.1f} dB")
display(ShowFile(filename="projection.gif"))"""),
    ("md", """## Fine-tune on your own pictures
Put your images in a folder (or upload a zip), make a data set at the model's resolution and train from
the default model. Snapshots land in `runs/mine`; `--resume-run runs/mine` continues after a disconnect."""),
    ("code", """!stylegan-anime dataset my_pictures/ my_pictures.zip --resolution {G.img_resolution} --force
!stylegan-anime train --data my_pictures.zip --out runs/mine --resume default --kimg 20 --snap 4 --batch 8"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS])
    nb.metadata.update({"colab": {"provenance": []}, "accelerator": "GPU",
                        "kernelspec": {"name": "python3", "display_name": "Python 3"},
                        "language_info": {"name": "python"}})
    return nb


if __name__ == "__main__":
    out = Path(__file__).with_name("stylegan_anime.ipynb")
    nbformat.write(build(), str(out))
    print(f"wrote {out}")

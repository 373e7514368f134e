"""The Gradio page over ``Studio``: tabs Roll, Favourites, Morph, Merge, Animate.

Only widgets and wiring here; every action is one ``Studio`` method. A ``UserError`` becomes a
``gr.Error``, which Gradio shows as a message in the page (never a stack trace).
"""
from __future__ import annotations

import functools
import io
import random
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image

from ..errors import UserError
from ..features.render import to_pil
from ..metrics.classifier import label_groups
from .studio import Studio

ANY = "any"


def _friendly(fn):
    """UserError → a message in the page."""
    @functools.wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except UserError as e:
            raise gr.Error(str(e)) from None
    return wrapped


def _attribute_prompt(names: list[str], choices: list) -> str:
    """Dropdown / checkbox values → a tag prompt ('hair_color=blonde, glasses')."""
    parts = []
    for g, value in zip(label_groups(names), choices):
        if g.binary and value:
            parts.append(names[g.start])
        elif not g.binary and value and value != ANY:
            parts.append(f"{g.name}={value}")
    return ", ".join(parts)


def _gallery(chars) -> list[tuple[Image.Image, str]]:
    return [(to_pil(c.image[None])[0], c.caption) for c in chars]


def _fav_gallery(studio: Studio) -> list[tuple[Image.Image, str]]:
    return [(Image.open(io.BytesIO(f.thumbnail)), f"#{f.id} {f.name}") for f in studio.favourites()]


def _fav_summary(studio: Studio) -> str:
    others = studio.store.other_networks(studio.network)
    text = f"network {studio.network}: {len(studio.favourites())} favourites"
    if others:
        text += " · other networks (not shown): " + ", ".join(f"{k} ({v})" for k, v in others.items())
    return text + (f"\n\n⚠ {studio.store.notice}" if studio.store.notice else "")


def _ids(text: str) -> list[int]:
    try:
        return [int(p.strip().lstrip("#")) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise UserError(f"favourite numbers look like 1, 4, 7 (got {text!r})") from None


def build(studio: Studio) -> gr.Blocks:
    """The page for ``studio``."""
    state = {"rolled": [], "merged": None, "morphed": None, "projected": None}
    names = studio.label_names
    with gr.Blocks(title="stylegan-anime studio") as page:
        gr.Markdown("## stylegan-anime · character studio")
        with gr.Tab("Roll"):
            attr_inputs = []
            with gr.Row(visible=bool(names)):
                for g in label_groups(names) if names else []:
                    if g.binary:
                        attr_inputs.append(gr.Checkbox(label=g.name, elem_id=f"attr-{g.name}"))
                    else:
                        values = [n.partition("=")[2] for n in names[g.start:g.start + g.width]]
                        attr_inputs.append(gr.Dropdown([ANY, *values], value=ANY, label=g.name,
                                                       elem_id=f"attr-{g.name}"))
            prompt = gr.Textbox(label="prompt", elem_id="prompt", visible=bool(names),
                                placeholder="long blonde hair in twintails, blue eyes, glasses, no hat")
            with gr.Row():
                count = gr.Slider(1, 16, value=8, step=1, label="characters", elem_id="count")
                psi = gr.Slider(0, 1, value=0.7, step=0.05, label="psi", elem_id="psi")
                seed0 = gr.Number(value=0, precision=0, label="first seed", elem_id="seed0")
            with gr.Row():
                roll_btn = gr.Button("roll", elem_id="roll", variant="primary")
                again_btn = gr.Button("again", elem_id="again")
            rolled = gr.Gallery(label="rolled", columns=8, elem_id="rolled")
            with gr.Row():
                keep_idx = gr.Number(value=1, precision=0, label="keep number (1 = first)", elem_id="keep-idx")
                keep_name = gr.Textbox(label="name", elem_id="keep-name")
                keep_btn = gr.Button("keep", elem_id="keep")
            status = gr.Markdown(elem_id="status")
        with gr.Tab("Favourites"):
            fav_info = gr.Markdown(_fav_summary(studio), elem_id="fav-info")
            favs = gr.Gallery(_fav_gallery(studio), label="favourites", columns=8, elem_id="favs")
            with gr.Row():
                fav_id = gr.Number(precision=0, label="favourite #", elem_id="fav-id")
                new_name = gr.Textbox(label="new name", elem_id="new-name")
                rename_btn = gr.Button("rename", elem_id="rename")
                delete_btn = gr.Button("delete", elem_id="delete")
                refresh_btn = gr.Button("refresh", elem_id="refresh")
            export_btn = gr.Button("export zip", elem_id="export")
            export_file = gr.File(label="favourites.zip", elem_id="export-file")
            import_file = gr.File(label="import a zip of latents", file_types=[".zip"], elem_id="import-file")
        with gr.Tab("Morph"):
            m_id = gr.Number(precision=0, label="favourite #", elem_id="morph-id")
            m_prompt = gr.Textbox(label="change to", elem_id="morph-prompt", placeholder="pink hair, smiling")
            m_dirs = {}
            if studio.directions is not None:
                with gr.Row():
                    for n in studio.directions.names:
                        m_dirs[n] = gr.Slider(-3, 3, value=0, step=0.25, label=n)
            m_steps = gr.Slider(2, 9, value=5, step=1, label="steps", elem_id="morph-steps")
            m_btn = gr.Button("morph", elem_id="morph", variant="primary")
            m_strip = gr.Gallery(label="strip", columns=9, elem_id="morph-strip")
            m_keep = gr.Button("keep the result", elem_id="morph-keep")
        with gr.Tab("Merge"):
            with gr.Row():
                a_id = gr.Number(precision=0, label="A #", elem_id="merge-a")
                b_id = gr.Number(precision=0, label="B #", elem_id="merge-b")
            mix = [gr.Slider(0, 1, value=0.5, step=0.05, label=f"{g}: A → B", elem_id=f"mix-{g}")
                   for g in ("coarse", "middle", "fine")]
            g_btn = gr.Button("merge", elem_id="merge", variant="primary")
            merged = gr.Image(label="merged", type="pil", elem_id="merged")
            g_keep = gr.Button("keep the result", elem_id="merge-keep")
        with gr.Tab("Animate"):
            v_ids = gr.Textbox(label="favourites, in order (e.g. 1, 3, 2)", elem_id="anim-ids")
            with gr.Row():
                v_frames = gr.Slider(4, 120, value=24, step=1, label="frames per transition", elem_id="anim-frames")
                v_loop = gr.Checkbox(value=True, label="loop")
                v_fmt = gr.Radio(["gif", "mp4"], value="gif", label="format")
            v_btn = gr.Button("animate", elem_id="animate", variant="primary")
            v_out = gr.File(label="video", elem_id="anim-file")
            v_view = gr.Image(label="preview", elem_id="anim-view")
        with gr.Tab("Project"):
            p_image = gr.Image(label="a picture", type="filepath", elem_id="proj-image")
            p_steps = gr.Slider(10, 1000, value=200, step=10, label="steps", elem_id="proj-steps")
            p_btn = gr.Button("project", elem_id="project", variant="primary")
            p_out = gr.Image(label="found", type="pil", elem_id="proj-out")
            p_caption = gr.Markdown(elem_id="proj-caption")
            p_keep = gr.Button("keep it", elem_id="proj-keep")

        @_friendly
        def do_roll(n, p, first, text, *attrs):
            tags = ", ".join(t for t in (_attribute_prompt(names, list(attrs)), text) if t)
            state["rolled"] = studio.roll(range(int(first), int(first) + int(n)), psi=p, prompt=tags)
            return _gallery(state["rolled"])

        def new_seed():
            return random.randrange(2 ** 31)

        @_friendly
        def do_keep(i, name):
            if not 1 <= int(i or 0) <= len(state["rolled"]):
                raise UserError(f"roll first, then keep a number from 1 to {len(state['rolled']) or 'N'}")
            fid = studio.keep(state["rolled"][int(i) - 1], name)
            return f"kept #{fid}", _fav_gallery(studio), _fav_summary(studio)

        def refresh():
            return _fav_gallery(studio), _fav_summary(studio)

        @_friendly
        def do_rename(i, name):
            studio.favourite(int(i or 0))
            studio.store.rename(int(i), name)
            return refresh()

        @_friendly
        def do_delete(i):
            studio.favourite(int(i or 0))
            studio.store.delete(int(i))
            return refresh()

        @_friendly
        def do_export():
            return str(studio.store.export_zip(studio.network, Path(tempfile.mkdtemp()) / "favourites.zip"))

        @_friendly
        def do_morph(i, text, steps, *strengths):
            s = dict(zip(m_dirs, strengths))
            state["morphed"] = studio.morph(int(i or 0), text, s, int(steps))
            return _gallery(state["morphed"])

        @_friendly
        def keep_morph():
            if not state["morphed"]:
                raise UserError("morph a favourite first")
            fid = studio.keep(state["morphed"][-1])
            return (f"kept #{fid}", *refresh())

        @_friendly
        def do_merge(a, b, *amounts):
            state["merged"] = studio.merge(int(a or 0), int(b or 0), dict(zip(("coarse", "middle", "fine"), amounts)))
            return to_pil(state["merged"].image[None])[0]

        @_friendly
        def keep_merge():
            if state["merged"] is None:
                raise UserError("merge two favourites first")
            fid = studio.keep(state["merged"])
            return (f"kept #{fid}", *refresh())

        @_friendly
        def do_animate(ids, frames, loop, fmt, progress=gr.Progress(track_tqdm=True)):
            out = Path(tempfile.mkdtemp()) / f"studio.{fmt}"
            path = str(studio.animate(_ids(ids), out, int(frames), loop=loop, progress=True))
            return path, path if fmt == "gif" else None

        @_friendly
        def do_import(path):
            if not path:
                return refresh()
            studio.import_zip(path)
            return refresh()

        @_friendly
        def do_project(path, steps, progress=gr.Progress(track_tqdm=True)):
            if not path:
                raise UserError("upload a picture first")
            state["projected"] = studio.project(path, int(steps), progress=True)
            return to_pil(state["projected"].image[None])[0], state["projected"].caption

        @_friendly
        def keep_projected():
            if state["projected"] is None:
                raise UserError("project a picture first")
            fid = studio.keep(state["projected"], "projected")
            return (f"kept #{fid}", *refresh())

        roll_in = [count, psi, seed0, prompt, *attr_inputs]
        roll_btn.click(do_roll, roll_in, rolled)
        again_btn.click(new_seed, None, seed0).then(do_roll, roll_in, rolled)
        keep_btn.click(do_keep, [keep_idx, keep_name], [status, favs, fav_info])
        refresh_btn.click(refresh, None, [favs, fav_info])
        rename_btn.click(do_rename, [fav_id, new_name], [favs, fav_info])
        delete_btn.click(do_delete, [fav_id], [favs, fav_info])
        export_btn.click(do_export, None, export_file)
        m_btn.click(do_morph, [m_id, m_prompt, m_steps, *m_dirs.values()], m_strip)
        m_keep.click(keep_morph, None, [status, favs, fav_info])
        g_btn.click(do_merge, [a_id, b_id, *mix], merged)
        g_keep.click(keep_merge, None, [status, favs, fav_info])
        import_file.upload(do_import, import_file, [favs, fav_info])
        p_btn.click(do_project, [p_image, p_steps], [p_out, p_caption])
        p_keep.click(keep_projected, None, [p_caption, favs, fav_info])
        v_btn.click(do_animate, [v_ids, v_frames, v_loop, v_fmt], [v_out, v_view])
    return page


def launch(G, inline: bool = False, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           directions=None, store=None, block: bool = True):
    """Serve the studio for ``G`` on ``host:port`` (``share``: a public gradio.live link)."""
    page = build(Studio(G, store, directions))
    page.queue()  # a video render does not block the other buttons; progress is shown
    page.launch(server_name=host, server_port=port, share=share, inline=inline, prevent_thread_lock=not block)
    return page

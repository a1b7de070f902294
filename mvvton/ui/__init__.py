"""The try-on web page (Gradio, `pip install 'mvvton[ui]'`): `build_demo`, `mount_ui`; gradio is imported lazily."""

from mvvton.ui.app import build_demo, launch_kwargs, load_pipeline, mount_ui

__all__ = ["build_demo", "launch_kwargs", "load_pipeline", "mount_ui"]

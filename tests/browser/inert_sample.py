"""A page for test_inert_render: each string of ``SAMPLES`` made inert and drawn in every
kind of Markdown Streamlit has. Run by the test with ``streamlit run``."""

from __future__ import annotations

import io

import streamlit as st
from PIL import Image

from core.text import inert
from tests.browser.inert_samples import SAMPLES

_PIXEL = io.BytesIO()
Image.new("RGB", (8, 8), (90, 90, 90)).save(_PIXEL, format="PNG")

for index, sample in enumerate(SAMPLES):
    text = inert(sample, limit=None)
    st.markdown(f"M{index}|{text}|")
    st.caption(f"C{index}|{text}|")
    st.error(f"E{index}|{text}|")
    st.button(f"B{index}|{text}|", key=f"button_{index}")
    with st.expander(f"X{index}|{text}|"):
        st.write("inside")
    st.metric(f"L{index}|{text}|", f"V{index}|{text}|", help=f"H{index}|{text}|")
    st.progress(0.5, text=f"P{index}|{text}|")
    st.subheader(f"S{index}|{text}|")
    st.checkbox(f"K{index}|{text}|", key=f"checkbox_{index}")
    st.image(_PIXEL.getvalue(), caption=f"I{index}|{text}|")
st.tabs([f"T{index}|{inert(sample, limit=None)}|" for index, sample in enumerate(SAMPLES)])
st.markdown("END-OF-SAMPLES")

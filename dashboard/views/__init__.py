"""The dashboard's pages; each module has ``render(ctx)`` drawing one page with Streamlit."""

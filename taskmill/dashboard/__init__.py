"""The staff dashboard: server-rendered pages over taskmill.stats, charts as inline SVG."""

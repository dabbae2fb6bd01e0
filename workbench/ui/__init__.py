"""The web UI: a thin Gradio client of the engine. It never imports torch, transformers, peft or trl;
anything that needs them runs in the worker or in a helper process."""

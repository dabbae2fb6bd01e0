"""Everything that trains. Imported by the worker process only: it pulls in torch, transformers, peft and trl."""

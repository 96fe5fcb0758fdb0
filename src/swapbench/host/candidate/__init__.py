"""The candidate: its llama-server, launched natively or in docker and torn down, its GGUF checked, and the prepare
step that reads its model files into the page cache before the window."""

"""Chat formatting shared by every policy backend: tool-call parsing (`tool_parsers`), per model family."""

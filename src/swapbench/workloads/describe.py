"""The describe workload: free text about the image, kept whole for side-by-side judging."""

DEFAULT_PROMPT = (
    "Describe what you see in this camera image in two or three sentences: "
    "the scene, the objects in it and anything in the way."
)

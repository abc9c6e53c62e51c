"""Images: reading a file safely, and how many positions each image takes in the model."""

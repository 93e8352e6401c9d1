"""What is kept: the index (sqlite + journal), the resume walk, parts and merge, the object-storage mirror, records."""

"""Who looks after each mother: the primary butler for the pregnancy, and cover for visit days."""

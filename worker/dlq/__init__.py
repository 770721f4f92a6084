"""Dead letters after the fact: reading them back (:mod:`.store`) and re-driving them
(:mod:`.redrive`)."""

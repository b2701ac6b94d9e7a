"""What every Huifang service shares: the event envelope and schemas, errors,
the clock and working-day calendar, the MongoDB store and reliable messaging."""

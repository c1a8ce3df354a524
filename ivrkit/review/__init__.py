"""What a reviewer wants to know about a flow beyond its errors: `ivrkit check --report`
(`report`) and `ivrkit diff OLD NEW` (`diff`), both read from the flow's graph (`ivrkit.graph`)
and the shortest caller paths through it (`paths`)."""

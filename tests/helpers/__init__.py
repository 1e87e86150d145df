"""What tests share, one module per kind; test modules import from here, never from each other.

api          the API client with the demo staff's tokens (the ``api`` fixture's type)
problems     the problem+json assertion
factories    rows written straight to the database, request bodies, national ids
counts       what the reliability suites count, added up across xdist workers
servers      the project root, free ports, a fake SMS gateway, the seeded demo server
messages     lab messages: HL7 v2 ORU^R01, FHIR Bundles, webhook signatures
lab          the lab system as a client of the intake endpoints
catalogues   exam-rule catalogues on plain values (pure queue rules, the simulator's checks)
mothers, butlers, visits, feed, queues
             steps through the API that put the clinic in a state (enrol, book, check in, ...)
"""

"""The clinic console: the desk, station, doctor, butler-phone, her own and waiting-room
screens, served by the service itself as static files on its public REST API (no private
routes), and the API documentation pages, all working with no internet."""

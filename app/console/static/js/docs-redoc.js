// ReDoc's start-up, a file of its own because the CSP admits no inline script.
window.Redoc.init("/openapi.json", { hideDownloadButton: false }, document.getElementById("redoc"));

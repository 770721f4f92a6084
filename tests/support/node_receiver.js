// A webhook receiver on Node's http server with its defaults (keepAliveTimeout 5 s,
// advertised as "Keep-Alive: timeout=5"): reads the body, answers 200 "ok".
// Prints the port it listens on (127.0.0.1, chosen by the system) as its first line.
const http = require("http");
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
    res.end("ok");
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});

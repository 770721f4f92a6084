// Produces records with KafkaJS (a client that is not librdkafka) and exits 0 once the
// broker acknowledged them all: `node kafkajs_produce.js <bootstrap> <topic> <records.json>`,
// the file a JSON list of {"key": string, "value": string}.
const fs = require("fs");
const { Kafka, Partitioners, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, file] = process.argv.slice(2);
  const records = JSON.parse(fs.readFileSync(file, "utf8"));
  const kafka = new Kafka({
    clientId: "foreign-kafkajs",
    brokers: bootstrap.split(","),
    logLevel: logLevel.ERROR,
  });
  // The Java client's murmur2 partitioner (KafkaJS's default since 2.0, named to silence its
  // warning), so a key lands where any other producer would put it.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // One send per record, in order: the test checks per-key order as produced.
  for (const record of records) {
    await producer.send({ topic, acks: -1, messages: [{ key: record.key, value: record.value }] });
  }
  await producer.disconnect();
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});

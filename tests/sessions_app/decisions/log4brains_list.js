// Reads the ADRs of the Log4brains project in the current directory with Log4brains itself and
// prints JSON: what its CLI's `adr list --raw` prints, and each ADR's status, publication date
// and superseder as its core library reads them (the CLI's table shows no dates).
"use strict";

const { AppConsole } = require("@log4brains/cli-common");
const { createCli } = require("@log4brains/cli");
const { Log4brains } = require("@log4brains/core");

async function main() {
  const lines = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk, ...rest) => {
    lines.push(String(chunk));
    return true;
  };
  try {
    const cli = createCli({ appConsole: new AppConsole({ debug: false, traces: false }) });
    await cli.parseAsync(["node", "log4brains", "adr", "list", "--raw"]);
    // The command's promise is not awaited by commander 6: give it a moment to print.
    for (let i = 0; i < 50 && lines.length === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    process.stdout.write = write;
  }
  const adrs = await Log4brains.create(process.cwd()).searchAdrs();
  const read = adrs.map((adr) => ({
    slug: adr.slug,
    title: adr.title,
    status: adr.status,
    publicationDate: adr.publicationDate,
    supersededBy: adr.supersededBy,
  }));
  write(JSON.stringify({ list: lines.join(""), adrs: read }));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err));
  process.exit(1);
});

// Drives `mcpguard bridge -- mcp-server-everything stdio` with the official TypeScript SDK
// client (`@modelcontextprotocol/sdk`, npm; it speaks up to 2025-11-25), asserting exact
// results. Run by tests/bridge_interop.rs.
//
// usage: node ts_client.mjs SDK_DIR URL
//   SDK_DIR  the installed @modelcontextprotocol/sdk package (`$(npm root -g)/@modelcontextprotocol/sdk`)
// Prints one line per passed client and "ALL OK"; any failure throws (exit 1).

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [sdkDir, url] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(sdkDir, 'dist/esm', path)).href);
const { Client } = await load('client/index.js');
const { StreamableHTTPClientTransport } = await load('client/streamableHttp.js');

async function oneClient(tag) {
  const client = new Client({ name: `bridge-interop-${tag}`, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2025-11-25', `[${tag}] protocol version`);
  assert.match(transport.sessionId, /^[0-9a-f]{32}$/, `[${tag}] session id`);

  const tools = (await client.listTools()).tools.map((t) => t.name);
  assert.deepEqual(tools.slice(0, 3), ['echo', 'get-annotated-message', 'get-env'], `[${tag}] tools/list`);
  assert.equal(tools.length, 13, `[${tag}] tools/list count`);

  const echo = await client.callTool({ name: 'echo', arguments: { message: `hi from ${tag}` } });
  assert.deepEqual(echo.content, [{ type: 'text', text: `Echo: hi from ${tag}` }], `[${tag}] echo`);

  const progress = [];
  const long = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
    undefined,
    { onprogress: (p) => progress.push([p.progress, p.total]) },
  );
  assert.deepEqual(
    long.content,
    [{ type: 'text', text: 'Long running operation completed. Duration: 1 seconds, Steps: 2.' }],
    `[${tag}] long-running result`,
  );
  assert.deepEqual(progress, [[1, 2], [2, 2]], `[${tag}] progress`);

  const resources = (await client.listResources()).resources.map((r) => r.uri);
  assert.equal(resources[0], 'demo://resource/static/document/architecture.md', `[${tag}] resources/list`);
  const read = await client.readResource({ uri: 'demo://resource/dynamic/text/3' });
  assert.equal(read.contents.length, 1);
  assert.equal(read.contents[0].mimeType, 'text/plain');
  assert.match(
    read.contents[0].text,
    /^Resource 3: This is a plaintext resource created at \d{1,2}:\d{2}:\d{2} [AP]M$/,
    `[${tag}] resources/read`,
  );

  const prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo', state: 'NO' } });
  assert.deepEqual(
    prompt.messages,
    [{ role: 'user', content: { type: 'text', text: "What's weather in Oslo, NO?" } }],
    `[${tag}] prompts/get`,
  );

  await transport.terminateSession(); // DELETE
  assert.equal(transport.sessionId, undefined, `[${tag}] session ended`);
  await client.close();
  console.log(`[${tag}] ok`);
}

await oneClient('single');
await Promise.all([oneClient('first'), oneClient('second')]);
console.log('ALL OK');

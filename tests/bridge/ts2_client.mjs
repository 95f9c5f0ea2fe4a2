// Drives `mcpguard bridge -- mcp-server-everything stdio` with v2 of the official TypeScript
// SDK (`@modelcontextprotocol/client`, npm), which speaks 2026-07-28: it probes with
// server/discover and then sends stateless requests, which the bridge maps onto the
// 2025-11-25 child it initialized. Asserts exact results, an elicitation answered through
// an input_required round, and two clients at once. Run by tests/bridge_interop.rs.
//
// usage: node ts2_client.mjs CLIENT_DIR URL
//   CLIENT_DIR  the installed @modelcontextprotocol/client package
// Prints one line per passed client and "ALL OK"; any failure throws (exit 1).

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [clientDir, url] = process.argv.slice(2);
const { Client, StreamableHTTPClientTransport } = await import(
  pathToFileURL(join(clientDir, 'dist/index.mjs')).href
);

async function oneClient(tag) {
  const client = new Client(
    { name: `bridge-interop-${tag}`, version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: 'auto' } },
  );
  const asked = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { name: `Grace ${tag}` } };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28', `[${tag}] protocol version`);

  const tools = (await client.listTools()).tools.map((t) => t.name);
  assert.deepEqual(tools.slice(0, 3), ['echo', 'get-annotated-message', 'get-env'], `[${tag}] tools/list`);
  assert.ok(tools.includes('trigger-elicitation-request'), `[${tag}] tools/list: ${tools}`);

  const echo = await client.callTool({ name: 'echo', arguments: { message: `hi from ${tag}` } });
  assert.deepEqual(echo.content, [{ type: 'text', text: `Echo: hi from ${tag}` }], `[${tag}] echo`);

  const progress = [];
  const long = await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
    { onprogress: (p) => progress.push([p.progress, p.total]) },
  );
  assert.deepEqual(
    long.content,
    [{ type: 'text', text: 'Long running operation completed. Duration: 1 seconds, Steps: 2.' }],
    `[${tag}] long-running result`,
  );
  assert.deepEqual(progress, [[1, 2], [2, 2]], `[${tag}] progress`);

  const read = await client.readResource({ uri: 'demo://resource/dynamic/text/3' });
  assert.equal(read.contents.length, 1, `[${tag}] resources/read`);
  assert.match(read.contents[0].text, /^Resource 3: This is a plaintext resource created at /, `[${tag}] resources/read`);

  const prompt = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo', state: 'OS' } });
  assert.deepEqual(
    prompt.messages.map((m) => [m.role, m.content.text]),
    [['user', "What's weather in Oslo, OS?"]],
    `[${tag}] prompts/get`,
  );
  await client.close();
  console.log(`[${tag}] ok`);
}

async function elicitation() {
  const client = new Client(
    { name: 'bridge-interop-elicit', version: '1.0.0' },
    { capabilities: { elicitation: {} }, versionNegotiation: { mode: 'auto' } },
  );
  const asked = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params.message);
    return { action: 'accept', content: { name: 'Grace Hopper', check: false } };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
  assert.deepEqual(
    result.content.slice(0, 2),
    [
      { type: 'text', text: '✅ User provided the requested information!' },
      { type: 'text', text: 'User inputs:\n- Name: Grace Hopper\n- Agreed to terms: false' },
    ],
    'elicitation round',
  );
  assert.deepEqual(asked, ['Please provide inputs for the following fields:'], 'elicitation asked');
  await client.close();
  console.log('[elicitation] ok');
}

await oneClient('single');
await Promise.all([oneClient('first'), oneClient('second')]);
await elicitation();
console.log('ALL OK');

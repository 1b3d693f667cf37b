// tests/sdk/openai_client.mjs - the official OpenAI JavaScript SDK talking
// to `aichat serve` as a real client would.  Usage:
//   node openai_client.mjs BASE_URL MODEL MODE
// MODE: stream | plain | error | tools | tools-stream | image | schema.
// Prints the answer text (stream: the concatenated deltas), then a line
// "usage P C" when the server reported usage; errors print "error STATUS TYPE".
// tools: "call NAME ARGUMENTS" for the model's tool call, then the answer
// to the tool's result; tools-stream the same, the arguments assembled
// from the streamed fragments.  schema: the answer, then "valid json" when
// it parses.
import OpenAI from "openai";

const [baseURL, model, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: process.env.SDK_KEY || "unused", maxRetries: 0 });

try {
	if (mode === "stream") {
		const stream = await client.chat.completions.create({
			model, stream: true, stream_options: { include_usage: true },
			messages: [{ role: "user", content: "streamed through the sdk" }],
		});
		let text = "", usage = null;
		for await (const chunk of stream) {
			if (chunk.choices.length && chunk.choices[0].delta.content)
				text += chunk.choices[0].delta.content;
			if (chunk.usage) usage = chunk.usage;
		}
		console.log(text);
		if (usage) console.log(`usage ${usage.prompt_tokens} ${usage.completion_tokens}`);
	} else if (mode === "plain") {
		const r = await client.chat.completions.create({
			model, messages: [
				{ role: "system", content: "be brief" },
				{ role: "user", content: "plain through the sdk" }],
		});
		console.log(r.choices[0].message.content);
		console.log(`usage ${r.usage.prompt_tokens} ${r.usage.completion_tokens}`);
	} else if (mode === "tools" || mode === "tools-stream") {
		const stream = mode === "tools-stream";
		const tools = [{ type: "function", function: {
			name: "lookup", description: "looks a word up",
			parameters: { type: "object", properties: { query: { type: "string" } },
				      required: ["query"] } } }];
		const messages = [{ role: "user", content: 'look up "café"' }];
		const ask = async () => {
			if (!stream)
				return (await client.chat.completions.create({ model, tools, messages })).choices[0];
			// Assemble the message from the deltas as agent frameworks do.
			const s = await client.chat.completions.create({ model, tools, messages, stream: true });
			const msg = { role: "assistant", content: "", tool_calls: [] };
			let finish = null;
			for await (const chunk of s) {
				const ch = chunk.choices[0];
				if (!ch) continue;
				if (ch.delta.content) msg.content += ch.delta.content;
				for (const tc of ch.delta.tool_calls ?? []) {
					const t = msg.tool_calls[tc.index] ??= { id: "", type: "function",
						function: { name: "", arguments: "" } };
					if (tc.id) t.id = tc.id;
					if (tc.function?.name) t.function.name += tc.function.name;
					if (tc.function?.arguments) t.function.arguments += tc.function.arguments;
				}
				if (ch.finish_reason) finish = ch.finish_reason;
			}
			if (!msg.tool_calls.length) delete msg.tool_calls;
			return { message: msg, finish_reason: finish };
		};
		const first = await ask();
		const call = first.message.tool_calls[0];
		console.log(`call ${call.function.name} ${call.function.arguments}`);
		console.log(`finish ${first.finish_reason}`);
		JSON.parse(call.function.arguments);
		messages.push({ role: "assistant", content: first.message.content || null,
				tool_calls: first.message.tool_calls });
		messages.push({ role: "tool", tool_call_id: call.id, content: "42" });
		const second = await ask();
		console.log(second.message.content);
	} else if (mode === "image") {
		const r = await client.chat.completions.create({ model, messages: [{ role: "user", content: [
			{ type: "text", text: "what is this" },
			{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] }] });
		console.log(r.choices[0].message.content);
	} else if (mode === "schema") {
		const r = await client.chat.completions.create({ model,
			messages: [{ role: "user", content: "give the answer" }],
			response_format: { type: "json_schema", json_schema: { name: "answer", strict: true,
				schema: { type: "object", properties: { answer: { type: "string" },
					n: { type: "integer" } }, required: ["answer", "n"] } } } });
		const text = r.choices[0].message.content;
		console.log(text);
		JSON.parse(text);
		console.log("valid json");
	} else {
		await client.chat.completions.create({
			model, temperature: 9, messages: [{ role: "user", content: "x" }],
		});
		console.log("no error?");
	}
} catch (e) {
	console.log(`error ${e.status} ${e.error?.type ?? e.type ?? e.message}`);
	process.exitCode = 3;
}

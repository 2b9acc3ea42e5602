"""Drive `spotlight serve` with the official `openai` Python client, as users do.

Run by tests/serve.rs with SPOTLIGHT_BASE (…/v1) and SPOTLIGHT_KEY set; prints one JSON line
that the Rust test checks. Highlights travel in `extra_body`, the client's way to send fields
the OpenAI API does not define.
"""

import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["SPOTLIGHT_BASE"], api_key=os.environ["SPOTLIGHT_KEY"], max_retries=0)
messages = [{"role": "user", "content": "Write a short poem about the sea. **Use only lowercase letters.**"}]

steered = client.chat.completions.create(model="default", messages=messages, temperature=0, max_tokens=16)
plain = client.chat.completions.create(
    model="default", messages=messages, temperature=0, max_tokens=16, extra_body={"spotlight": {"alpha": 0}}
)

stream_text = ""
for chunk in client.chat.completions.create(
    model="default", messages=messages, temperature=0, max_tokens=16, stream=True
):
    if chunk.choices and chunk.choices[0].delta.content:
        stream_text += chunk.choices[0].delta.content

completion = client.completions.create(model="default", prompt="The sky is", temperature=0, max_tokens=4)
assert completion.choices[0].text, completion

try:
    client.chat.completions.create(
        model="default", messages=messages, max_tokens=4, extra_body={"spotlight": {"alpha": 1.5}}
    )
    bad_alpha_status = 200
except openai.BadRequestError as e:
    bad_alpha_status = e.status_code

models = [m.id for m in client.models.list()]
assert models, models

print(
    json.dumps(
        {
            "text": steered.choices[0].message.content,
            "steered": steered.model_extra["spotlight"]["steered"],
            "plain_text": plain.choices[0].message.content,
            "plain_steered": plain.model_extra["spotlight"]["steered"],
            "stream_text": stream_text,
            "usage": steered.usage.completion_tokens,
            "bad_alpha_status": bad_alpha_status,
        }
    )
)

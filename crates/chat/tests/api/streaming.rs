//! A reply's deltas on their way to the client: joined when they come
//! faster than `DELTA_FLUSH_MS` (fewer messages and wake-ups per reply),
//! the first never held, and the text the same.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure fails the test"
)]

use std::time::Duration;

use aichat_billing::testing::TestBilling;
use aichat_chat::testing::{Providers, TestChat};
use aichat_mockllm::{MockConfig, MockServer};
use aichat_proto::chat::v1::{
    CreateConversationRequest, SendMessageRequest, chat_client::ChatClient,
    send_message_event::Event,
};
use uuid::Uuid;

/// What one reply looked like on the stream.
struct Streamed {
    deltas: Vec<String>,
    content: String,
}

/// A chat relaying deltas at most once per `flush`, replying with 60
/// tokens 2 ms apart (a fast model), and one reply read to its end.
async fn reply(flush: Duration) -> Streamed {
    let amqp = aichat_billing::testing::unique_amqp();
    let billing = TestBilling::spawn(amqp.clone()).await.unwrap();
    let mock = MockServer::start(MockConfig {
        ttft: Duration::from_millis(5),
        token_delay: Duration::from_millis(2),
        reply_tokens: 60,
    })
    .await
    .unwrap();
    let chat = TestChat::spawn_with(amqp, &billing.url, Providers::mock(&mock.url()), |c| {
        c.delta_flush = flush;
    })
    .await
    .unwrap();
    let mut client = ChatClient::connect(chat.url.clone()).await.unwrap();
    let user_id = Uuid::now_v7().to_string();
    let conversation = client
        .create_conversation(CreateConversationRequest {
            user_id: user_id.clone(),
            model: "gpt-4o".into(),
            title: None,
            description: None,
            system_prompt: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut stream = client
        .send_message(SendMessageRequest {
            user_id,
            conversation_id: conversation.id,
            content: "hello".into(),
            model: None,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut deltas, mut content) = (Vec::new(), None);
    while let Some(event) = stream.message().await.unwrap() {
        match event.event {
            Some(Event::Delta(delta)) => deltas.push(delta),
            Some(Event::Done(done)) => content = Some(done.message.unwrap().content),
            Some(Event::Error(error)) => panic!("the reply failed: {error:?}"),
            _ => {}
        }
    }
    chat.stop().await;
    billing.stop().await;
    Streamed {
        deltas,
        content: content.unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_reply_is_relayed_in_fewer_joined_deltas_with_the_same_text() {
    let joined = reply(Duration::from_millis(16)).await;
    let each = reply(Duration::ZERO).await;

    // Each token its own message without joining; far fewer with it
    // (~125 ms of tokens: about one message per 16 ms, not one per token).
    assert_eq!(each.deltas.len(), 60, "one message per token when off");
    assert!(
        joined.deltas.len() <= 20,
        "{} messages for 60 tokens in ~125 ms",
        joined.deltas.len()
    );
    assert!(joined.deltas.len() >= 2, "still streamed, not one block");
    // The same text either way, and the stored reply is what was streamed.
    assert_eq!(joined.deltas.concat(), joined.content);
    assert_eq!(each.deltas.concat(), each.content);
    assert_eq!(joined.content, each.content);
    // The first token is not held to be joined with the next ones: it
    // goes alone.
    assert_eq!(joined.deltas[0], each.deltas[0]);
}

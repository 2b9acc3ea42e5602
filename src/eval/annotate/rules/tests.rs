//! Each rule on prompts from IFEval's data.

use super::super::tests::one;
use serde_json::json;

#[test]
fn no_comma() {
    let p = "I am planning a trip to Japan, and I would like thee to write an itinerary for my journey in a \
             Shakespearean style. You are not allowed to use any commas in your response.";
    assert_eq!(
        one(p, "punctuation:no_comma", json!({})),
        ["You are not allowed to use any commas in your response."]
    );
}

#[test]
fn english_lowercase() {
    let p = "Write a story about commandos who are in the middle of the night in a sector. It should be in \
             English, and no capital letters are allowed. The story should not include keywords \"coop\", \
             \"killings\", \"dead\", \"night\".";
    assert_eq!(
        one(p, "change_case:english_lowercase", json!({})),
        ["It should be in English, and no capital letters are allowed."]
    );
    let p = "Given the sentence \"Two young boys with toy guns and horns.\" can you ask a question? Please ensure \
             that your response is in English, and in all lowercase letters. No capital letters are allowed.";
    assert_eq!(
        one(p, "change_case:english_lowercase", json!({})),
        ["Please ensure that your response is in English, and in all lowercase letters."]
    );
}

#[test]
fn english_capital() {
    let p = "Write the lyrics to a hit song by the rock band 'The Gifted and The Not Gifted'. To make it rocky, \
             the response should be in all capital letters. The word \"rock\" should not appear in your response.";
    assert_eq!(
        one(p, "change_case:english_capital", json!({})),
        ["To make it rocky, the response should be in all capital letters."]
    );
}

#[test]
fn capital_word_frequency() {
    let p = "I work in the marketing department and I need your help. I need a template for an advertisement for \
             a new product which is a portable camera. In the template, capitalize a few words to stress main \
             points. Please limit the number of words with all capital letters to less than four. Your response \
             should contain at least ten sentences.";
    let kw = json!({"capital_relation": "less than", "capital_frequency": 4});
    assert_eq!(
        one(p, "change_case:capital_word_frequency", kw),
        ["Please limit the number of words with all capital letters to less than four."]
    );
}

#[test]
fn keywords_existence() {
    let p = "Write an HTML page that lists 25 limericks about people named \"Bill\". The page should include \
             keywords 'economist', 'bill', and 'jurgen'";
    let kw = json!({"keywords": ["bill", "economist", "jurgen"]});
    assert_eq!(
        one(p, "keywords:existence", kw),
        ["The page should include keywords 'economist', 'bill', and 'jurgen'"]
    );
}

#[test]
fn keywords_frequency() {
    let p = "What happened when the Tang dynasty of China was in power? Make sure to use the word war at least 8 \
             times, and the word peace at least 10 times.";
    let kw = json!({"relation": "at least", "keyword": "peace", "frequency": 10});
    assert_eq!(
        one(p, "keywords:frequency", kw),
        ["Make sure to use the word war at least 8 times, and the word peace at least 10 times."]
    );
    let p = "I work for a software development company named \"grid\", and they want a catchy tweet. Can you write \
             one that includes the name of the company at least five times?";
    let kw = json!({"relation": "at least", "keyword": "grid", "frequency": 5});
    assert_eq!(
        one(p, "keywords:frequency", kw),
        ["Can you write one that includes the name of the company at least five times?"]
    );
}

#[test]
fn forbidden_words() {
    let p = "Write a song that critiques the song \"We Are Never Ever Getting Back Together\" by Taylor Swift. \
             Wrap your entire response with double quotation marks. Do not mention the word Taylor, Swift, or \
             Together.";
    let kw = json!({"forbidden_words": ["taylor", "swift", "together"]});
    assert_eq!(
        one(p, "keywords:forbidden_words", kw),
        ["Do not mention the word Taylor, Swift, or Together."]
    );
}

#[test]
fn letter_frequency() {
    let p = "Create a dialogue between two people who are both trying to avoid using the letter t. But somehow \
             they ended up using a lot of t in their dialogue. Break the dialogue into two scenes, separated by 6 \
             asterisk symbols: ******. The letter t must appear at least 30 times in the dialogue you write.";
    let kw = json!({"let_relation": "at least", "letter": "t", "let_frequency": 30});
    assert_eq!(
        one(p, "keywords:letter_frequency", kw),
        ["The letter t must appear at least 30 times in the dialogue you write."]
    );
    let p = "make a tweet for playboy's twitter account without using capital letters. Include at least 4 \
             hashtags, starting with '#'";
    let kw = json!({"let_relation": "at least", "letter": "#", "let_frequency": 4});
    assert_eq!(
        one(p, "keywords:letter_frequency", kw),
        ["Include at least 4 hashtags, starting with '#'"]
    );
}

#[test]
fn response_language() {
    let p = "Write a funny riddle in Hindi, about a man named Aarav who never spoke. Your entire response should \
             be written in Hindi. Also, you cannot use any commas in your entire response.";
    assert_eq!(
        one(p, "language:response_language", json!({"language": "hi"})),
        ["Your entire response should be written in Hindi."]
    );
}

#[test]
fn number_sentences() {
    let p = "Can you give me an example for a journal entry about stress management? Tell me how you come up \
             with the example. Your entire response should contain less than 6 sentences.";
    let kw = json!({"relation": "less than", "num_sentences": 6});
    assert_eq!(
        one(p, "length_constraints:number_sentences", kw),
        ["Your entire response should contain less than 6 sentences."]
    );
}

#[test]
fn number_paragraphs() {
    let p = "Write a very angry letter to someone who's been trying to convince you that 1+1=3. There should be \
             exactly 4 paragraphs. Separate the paragraphs with ***.";
    assert_eq!(
        one(p, "length_constraints:number_paragraphs", json!({"num_paragraphs": 4})),
        [
            "There should be exactly 4 paragraphs.",
            "Separate the paragraphs with ***."
        ]
    );
}

#[test]
fn number_words() {
    let p = "Write a 300+ word summary of the wikipedia page \"https://en.wikipedia.org/wiki/Raymond_III,_Count_\
             of_Tripoli\". Do not use any commas and highlight at least 3 sections that has titles in markdown \
             format, for example *highlighted section part 1*, *highlighted section part 2*, *highlighted \
             section part 3*.";
    let kw = json!({"relation": "at least", "num_words": 300});
    assert_eq!(
        one(p, "length_constraints:number_words", kw),
        [
            "Write a 300+ word summary of the wikipedia page \"https://en.wikipedia.org/wiki/Raymond_III,_Count_\
          of_Tripoli\"."
        ]
    );
    let p = "I want to write a reflective essay on how my life has changed since I started college. Do you have \
             any recommendation? Please reply in English and capitalize all your words. Control the length of \
             your reply. I don't want anything longer than 30 words.";
    let kw = json!({"relation": "less than", "num_words": 31});
    assert_eq!(
        one(p, "length_constraints:number_words", kw),
        ["I don't want anything longer than 30 words."]
    );
}

#[test]
fn nth_paragraph_first_word() {
    let p = "Write exactly 4 paragraphs about tips for installing a car seat for moms. Use 2 new lines to \
             separate paragraphs. Start the 4th paragraph with the word \"elm\".";
    let kw = json!({"first_word": "elm", "num_paragraphs": 4, "nth_paragraph": 4});
    assert_eq!(
        one(p, "length_constraints:nth_paragraph_first_word", kw),
        [
            "Write exactly 4 paragraphs about tips for installing a car seat for moms.",
            "Start the 4th paragraph with the word \"elm\"."
        ]
    );
}

#[test]
fn number_placeholders() {
    let p = "Write a resume for a fresh high school graduate who is seeking their first job. Make sure to \
             include at least 12 placeholder represented by square brackets, such as [address], [name].";
    assert_eq!(
        one(
            p,
            "detectable_content:number_placeholders",
            json!({"num_placeholders": 12})
        ),
        ["Make sure to include at least 12 placeholder represented by square brackets, such as [address], [name]."]
    );
}

#[test]
fn postscript() {
    let p = "Which one is a better brand for sneakers: Prada or Nike? Your entire response should be in English, \
             and in all capital letters. At the end of your response, please explicitly add a postscript \
             starting with P.S. The word sneaker should appear 10 or more times in your response.";
    assert_eq!(
        one(p, "detectable_content:postscript", json!({"postscript_marker": "P.S."})),
        ["At the end of your response, please explicitly add a postscript starting with P.S."]
    );
    let p = "Could you tell me what kind of balls are used in tennis? I would like the answer in the form of a \
             medieval style poem with a P.P.S at the end.";
    assert_eq!(
        one(
            p,
            "detectable_content:postscript",
            json!({"postscript_marker": "P.P.S"})
        ),
        ["I would like the answer in the form of a medieval style poem with a P.P.S at the end."]
    );
}

#[test]
fn number_bullet_lists() {
    let p = "List exactly 10 possible names for a new baby boy. Then add a postscript starting with P.P.S to the \
             end of your response. Put the names into bullet points that are indicated by:\n* This is an example \
             bullet";
    assert_eq!(
        one(p, "detectable_format:number_bullet_lists", json!({"num_bullets": 10})),
        ["Put the names into bullet points that are indicated by:"]
    );
}

#[test]
fn constrained_response() {
    let p = "Would you consider yourself to be smart? Choose from:\nMy answer is yes.\nMy answer is no.\nMy answer \
             is maybe.\nJust choose one phrase from above as your answer.";
    assert_eq!(
        one(p, "detectable_format:constrained_response", json!({})),
        [
            "Choose from:",
            "My answer is yes.",
            "My answer is no.",
            "My answer is maybe."
        ]
    );
}

#[test]
fn number_highlighted_sections() {
    let p = "Write a limerick about a woman named Sarah who lives in a town where it's always 90°F. Highlight at \
             least 6 sections in your answer with markdown, example: *highlighted section*. Mention the name \
             Sarah only once.";
    assert_eq!(
        one(
            p,
            "detectable_format:number_highlighted_sections",
            json!({"num_highlights": 6})
        ),
        ["Highlight at least 6 sections in your answer with markdown, example: *highlighted section*."]
    );
}

#[test]
fn multiple_sections() {
    let p = "Write a blog post about how to raise awareness for a cause. Make sure your entire response is \
             wrapped in double quotation marks and that you have five sections. Mark the beginning of each \
             section with Section X.";
    let kw = json!({"section_spliter": "Section", "num_sections": 5});
    assert_eq!(
        one(p, "detectable_format:multiple_sections", kw),
        [
            "Make sure your entire response is wrapped in double quotation marks and that you have five sections.",
            "Mark the beginning of each section with Section X."
        ]
    );
}

#[test]
fn json_format() {
    let p = "Write a facebook post about a flea market in JSON format. Do not include keywords 'flea' and 'JSON' \
             in the response.";
    assert_eq!(
        one(p, "detectable_format:json_format", json!({})),
        ["Write a facebook post about a flea market in JSON format."]
    );
}

#[test]
fn title() {
    let p = "Write a song about choking on a piece of chicken in the Potomac River. Put the title in double \
             angular brackets, i.e. <<title of my song>>.";
    assert_eq!(
        one(p, "detectable_format:title", json!({})),
        ["Put the title in double angular brackets, i.e. <<title of my song>>."]
    );
}

#[test]
fn two_responses() {
    let p = "What is a name that people call God? Please give exactly two different responses. Separate the \
             responses with 6 asterisk symbols: ******.";
    assert_eq!(
        one(p, "combination:two_responses", json!({})),
        [
            "Please give exactly two different responses.",
            "Separate the responses with 6 asterisk symbols: ******."
        ]
    );
}

#[test]
fn repeat_prompt() {
    let request = "Write a limerick about a customer who is always right. The word \"right\" should appear less \
                   than 2 times in the response.";
    let p = format!(
        "{request}\nBefore you give the limerick, just repeat the request above without any change, at the very \
         beginning of your entire response."
    );
    assert_eq!(
        one(&p, "combination:repeat_prompt", json!({"prompt_to_repeat": request})),
        [
            "Before you give the limerick, just repeat the request above without any change, at the very \
             beginning of your entire response."
        ]
    );
    // The repeated text itself mentions repeating; only the instruction around it counts.
    let request = "Write an essay about a person who repeats the same day.";
    let p = format!(
        "First repeat the request below word for word without change, then give your answer. Do not say any \
         words or characters before repeating the request.\n\n{request}"
    );
    assert_eq!(
        one(&p, "combination:repeat_prompt", json!({"prompt_to_repeat": request})),
        [
            "First repeat the request below word for word without change, then give your answer.",
            "Do not say any words or characters before repeating the request."
        ]
    );
}

#[test]
fn end_checker() {
    let p = "Write a strange rap song about Alexander the Great becoming the king of Macedon. Finish the song \
             with:\n\nPeace!\n\nNo additional words should follow \"Peace!\"";
    assert_eq!(
        one(p, "startend:end_checker", json!({"end_phrase": "Peace!"})),
        [
            "Finish the song with:",
            "Peace!",
            "No additional words should follow \"Peace!\""
        ]
    );
    let p = "Write a poem about how I am missing my classes. The poem must have 4 sections marked with SECTION X. \
             Finish the poem with this exact phrase: \"Can I get my money back for the classes I missed?\"";
    let kw = json!({"end_phrase": "Can I get my money back for the classes I missed?"});
    assert_eq!(
        one(p, "startend:end_checker", kw),
        ["Finish the poem with this exact phrase: \"Can I get my money back for the classes I missed?\""]
    );
}

#[test]
fn quotation() {
    let p = "Write a blog post about the history of the internet and how it has impacted our lives. Aim the blog \
             post at teenagers and wrap your entire response with double quotation marks.";
    assert_eq!(
        one(p, "startend:quotation", json!({})),
        ["Aim the blog post at teenagers and wrap your entire response with double quotation marks."]
    );
}

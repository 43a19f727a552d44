//! Describing arguments and results for [`HostCallEvent`] by
//! "autoref specialisation": `(&Arg(&x)).describe()` picks `DescribeKnown`
//! when `Arg<T>` implements it and otherwise falls back to `None`.
//!
//! [`HostCallEvent`]: super::HostCallEvent

use std::fmt::Display;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;

pub struct Arg<'a, T>(pub &'a T);

pub trait DescribeKnown {
    fn describe(&self) -> Option<String>;
}

pub trait DescribeFallback {
    fn describe(&self) -> Option<String>;
}

impl<T> DescribeFallback for &Arg<'_, T> {
    fn describe(&self) -> Option<String> {
        None
    }
}

impl DescribeKnown for Arg<'_, String> {
    fn describe(&self) -> Option<String> {
        Some(format!("{:?}", self.0))
    }
}

impl DescribeKnown for Arg<'_, u64> {
    fn describe(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

impl DescribeKnown for Arg<'_, Vec<u8>> {
    fn describe(&self) -> Option<String> {
        Some(format!("{} bytes", self.0.len()))
    }
}

impl<T: 'static> DescribeKnown for Arg<'_, Resource<T>> {
    fn describe(&self) -> Option<String> {
        Some(format!("#{}", self.0.rep()))
    }
}

impl DescribeKnown for Arg<'_, fs::OpenFlags> {
    fn describe(&self) -> Option<String> {
        Some(format!("{:?}", self.0))
    }
}

impl DescribeKnown for Arg<'_, fs::DescriptorFlags> {
    fn describe(&self) -> Option<String> {
        Some(format!("{:?}", self.0))
    }
}

/// The `Ok` values worth showing; others show as `ok`.
pub trait OkValue {
    fn ok_value(&self) -> String {
        "ok".into()
    }
}

impl OkValue for () {}
impl OkValue for fs::DescriptorStat {
    fn ok_value(&self) -> String {
        format!("size {}", self.size)
    }
}
impl OkValue for fs::MetadataHashValue {}
impl OkValue for bool {
    fn ok_value(&self) -> String {
        self.to_string()
    }
}
impl OkValue for u64 {
    fn ok_value(&self) -> String {
        self.to_string()
    }
}
impl OkValue for Vec<u8> {
    fn ok_value(&self) -> String {
        format!("{} bytes", self.len())
    }
}
impl OkValue for (Vec<u8>, bool) {
    fn ok_value(&self) -> String {
        format!(
            "{} bytes{}",
            self.0.len(),
            if self.1 { ", eof" } else { "" }
        )
    }
}
impl<T: 'static> OkValue for Resource<T> {
    fn ok_value(&self) -> String {
        format!("#{}", self.rep())
    }
}

impl<T: OkValue, E: Display> DescribeKnown for Arg<'_, Result<T, E>> {
    fn describe(&self) -> Option<String> {
        Some(match self.0 {
            Ok(v) => v.ok_value(),
            Err(e) => format!("err: {e}"),
        })
    }
}
